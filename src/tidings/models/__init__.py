"""ORM tables, one module each; importing this package registers them all."""

from tidings.models.base import Base
from tidings.models.delivery import Delivery
from tidings.models.idempotency import IdempotencyKey
from tidings.models.lease import Lease
from tidings.models.live_event import LiveCounter, LiveEvent
from tidings.models.notification import Notification
from tidings.models.recipient import Recipient
from tidings.models.send import Send
from tidings.models.suppression import Suppression
from tidings.models.template import Template
from tidings.models.tenant import Tenant
from tidings.models.topic import TopicSubscription

__all__ = [
    "Base",
    "Delivery",
    "IdempotencyKey",
    "Lease",
    "LiveCounter",
    "LiveEvent",
    "Notification",
    "Recipient",
    "Send",
    "Suppression",
    "Template",
    "Tenant",
    "TopicSubscription",
]
