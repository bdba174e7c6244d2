"""HTTP only: parse the request, call domain and store, serialise the answer."""
