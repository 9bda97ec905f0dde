"""Users & Items: your solution of the `fastapi-db-auth` assignment."""
