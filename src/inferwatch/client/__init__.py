"""A client of the inferwatch server's APIs and the commands built on it:
``inferwatch query``, ``inferwatch alerts`` and ``inferwatch silence add|list|expire``.

:class:`~inferwatch.client.api.APIClient` works against a real Prometheus and a real
Alertmanager too.
"""
