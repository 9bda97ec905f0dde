"""Users & Items: the reference solution of the `fastapi-db-auth` assignment."""
