"""The transfer stage: local files read and checked (files), PUTs signed (signing) and sent with retries
(sending), small files and multipart uploads (uploads), and the bucket as a run talks to it (destination)."""
