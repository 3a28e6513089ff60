"""RQ job functions: thin, take ids, call webapp.services, report progress."""
