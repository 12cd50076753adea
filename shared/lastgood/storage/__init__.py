"""Storage: S3 knowledge with no knowledge of databases — error classification (`s3`), multipart
uploads, client-side encryption and the audit trail.
"""
