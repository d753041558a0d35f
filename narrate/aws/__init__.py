"""Everything about where AWS is and what narrate does in it: the mode (the embedded AWS of local
mode, or your account), the boto3 clients, S3 objects, the IAM policies, and the container package."""
