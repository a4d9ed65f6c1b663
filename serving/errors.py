"""The two ways a serving request fails on the client's side, as TF Serving reports them."""


class BadRequest(ValueError):
    """Malformed or unusable input, or an unknown signature: REST 400, gRPC INVALID_ARGUMENT."""


class NotFound(LookupError):
    """An unknown model or version: REST 404, gRPC NOT_FOUND."""
