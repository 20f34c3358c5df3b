"""Protection of the site as a whole: a secret key fit for the deployment,
throttled sign-in and sign-up, the client's address.

Below `arena.matches`, `arena.web` and `arena.lobby`, which use it; it imports
nothing else of Arena.
"""
