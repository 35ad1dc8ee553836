"""HTTP: the Litestar application and its handlers."""
