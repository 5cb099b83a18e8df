"""The visible-instance set, offered to the project package's own pages.

The inventory decides which instances a request may see (a global model permission means
every instance, guardian object permissions mean those instances) and provides that
decision here; the audit log, the event log, the login events and the health report of
this package follow the same set without importing upward (contributions flow up).
"""

from collections.abc import Callable

from django.http import HttpRequest

VIEW_INSTANCE = "inventory.view_instance"

# (request, permission) -> ids of the instances the user holds it on; None means all.
InstanceScope = Callable[[HttpRequest, str], set[int] | None]

_provider: InstanceScope | None = None


def provide(provider: InstanceScope) -> InstanceScope:
    """Install the function that computes the visible-instance set (the inventory's)."""
    global _provider
    _provider = provider
    return provider


def visible_instance_ids(request: HttpRequest, perm: str = VIEW_INSTANCE) -> set[int] | None:
    """Ids of the instances ``request.user`` holds ``perm`` on; None means every instance.

    Without a provider nothing is visible: a page that cannot know the scope shows nothing.
    """
    if _provider is None:
        return set()
    return _provider(request, perm)


def sees_whole_estate(request: HttpRequest) -> bool:
    """Whether the request's user sees every instance, hence figures about the whole estate."""
    return visible_instance_ids(request) is None
