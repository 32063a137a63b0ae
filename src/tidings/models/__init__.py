"""ORM tables, one module each; importing this package registers them all."""

from tidings.models.base import Base
from tidings.models.delivery import Delivery
from tidings.models.idempotency import IdempotencyKey
from tidings.models.lease import Lease
from tidings.models.live_event import LiveCounter, LiveEvent
from tidings.models.notification import Notification
from tidings.models.opt_out import EmailOptOut, SMSOptOut
from tidings.models.preference import Digest, PreferenceSet
from tidings.models.provider_report import ProviderReport
from tidings.models.push_subscription import PushSubscription
from tidings.models.recipient import Recipient
from tidings.models.reminder import Reminder
from tidings.models.send import Send
from tidings.models.service_key import ServiceKey
from tidings.models.suppression import Suppression
from tidings.models.template import Template
from tidings.models.tenant import Tenant
from tidings.models.topic import TopicSubscription
from tidings.models.webhook_endpoint import WebhookEndpoint

__all__ = [
    "Base",
    "Delivery",
    "Digest",
    "EmailOptOut",
    "IdempotencyKey",
    "Lease",
    "LiveCounter",
    "LiveEvent",
    "Notification",
    "PreferenceSet",
    "ProviderReport",
    "PushSubscription",
    "Recipient",
    "Reminder",
    "SMSOptOut",
    "Send",
    "ServiceKey",
    "Suppression",
    "Template",
    "Tenant",
    "TopicSubscription",
    "WebhookEndpoint",
]
