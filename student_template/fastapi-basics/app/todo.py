from typing import NoReturn

from fastapi import HTTPException, status


def not_implemented() -> NoReturn:
    """What every unfinished route answers. Delete the calls as you implement the routes."""
    raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, "Not implemented")
