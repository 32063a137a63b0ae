"""The default templates seeded for every tenant: the hiring domain's notifications.

Candidate-facing templates (interviews, applications, offers) are here; the ones for
the hiring team live in ``_defaults_team``. Interview templates are sent to both the
candidate and the interviewer by the reminder flow, whose request carries only
``interview_time``, ``duration_minutes`` and ``location``: everything else in them is
optional, and the wording ("your interview") suits both sides.

``TEMPLATE_VARIABLES_EXAMPLE`` documents each template's variables by example; every
template can also use ``recipient``, ``tenant``, ``notification``, ``unsubscribe_url``
and ``inbox_url`` (see ``ALWAYS_AVAILABLE_EXAMPLE``).
"""

from __future__ import annotations

from typing import Any, Final

from tidings.template._compose import (
    GREETING,
    Action,
    Email,
    Para,
    Row,
    defined,
    link,
    make_template,
)
from tidings.template._defaults_team import TEAM_TEMPLATES
from tidings.template.default_examples import ALWAYS_AVAILABLE_EXAMPLE, TEMPLATE_VARIABLES_EXAMPLE

__all__ = ["ALWAYS_AVAILABLE_EXAMPLE", "DEFAULT_TEMPLATES", "TEMPLATE_VARIABLES_EXAMPLE"]

# "for Senior Backend Engineer at Acme", each part only when the caller sent it.
_ROLE: Final = (
    "{% if job_title is defined and job_title %} for {{ job_title }}{% endif %}"
    "{% if company_name is defined and company_name %} at {{ company_name }}{% endif %}"
)
_JOB_SUFFIX: Final = "{% if job_title is defined and job_title %}: {{ job_title }}{% endif %}"
_FOR_JOB: Final = "{% if job_title is defined and job_title %} for {{ job_title }}{% endif %}"
_WHEN: Final = '{{ interview_time|datetime("%A, %d %B %Y at %H:%M %Z") }}'
_WHEN_SHORT: Final = '{{ interview_time|datetime("%a %d %b, %H:%M %Z") }}'
_INTERVIEW_URL: Final = "{{ interview_url|default(inbox_url) }}"
_LOCATION_HTML: Final = (
    '{% if location.startswith("https://") %}'
    + link("{{ location }}", "{{ location }}")
    + "{% else %}{{ location }}{% endif %}"
)
_SMS_WHERE: Final = "{% if location is defined and location %} Where: {{ location }}.{% endif %}"


def _interview_rows(when_label: str = "When") -> tuple[Row, ...]:
    return (
        Row(when_label, _WHEN),
        Row("Duration", "{{ duration_minutes }} minutes"),
        Row("Where", "{{ location }}", when=defined("location"), html=_LOCATION_HTML),
        Row("With", "{{ interviewer_names }}", when=defined("interviewer_names")),
        Row(
            "Video call",
            "{{ meeting_url }}",
            when=defined("meeting_url"),
            html=link("{{ meeting_url }}", "Join the call"),
        ),
    )


_INTERVIEW_SCHEDULED = make_template(
    "interview_scheduled",
    "Interview scheduled",
    category="interview",
    priority="high",
    channels=["in_app", "email"],
    title=f"Interview scheduled{_JOB_SUFFIX}",
    body=f"Your interview{_ROLE} is on {_WHEN_SHORT} ({{{{ duration_minutes }}}} min).",
    action_url=_INTERVIEW_URL,
    email=Email(
        subject=f"Interview confirmed{_JOB_SUFFIX} on {_WHEN_SHORT}",
        heading="Your interview is scheduled",
        intro=[GREETING, f"Your interview{_ROLE} has been scheduled. Here are the details:"],
        details=_interview_rows(),
        action=Action("View interview details", _INTERVIEW_URL),
        outro=[
            "Please add it to your calendar. If the time no longer works for you, let us know"
            " as soon as possible so we can find another slot.",
        ],
    ),
    sms=f"Your interview{_FOR_JOB} is scheduled for {_WHEN_SHORT}"
    f" ({{{{ duration_minutes }}}} min).{_SMS_WHERE}",
    push=True,
)

_INTERVIEW_REMINDER = make_template(
    "interview_reminder",
    "Interview reminder",
    category="interview",
    priority="high",
    channels=["in_app", "email", "sms", "push"],
    title=f"Upcoming interview{_JOB_SUFFIX}",
    body=f"Reminder: your interview{_ROLE} is on {_WHEN_SHORT}.",
    action_url=_INTERVIEW_URL,
    email=Email(
        subject=f"Reminder: your interview on {_WHEN_SHORT}",
        heading="Your interview is coming up",
        intro=[GREETING, f"This is a friendly reminder of your interview{_ROLE}."],
        details=_interview_rows(),
        action=Action("View interview details", _INTERVIEW_URL),
        outro=[
            Para(
                "Joining by video? Open the link a few minutes early to check your camera"
                " and microphone.",
                when=defined("meeting_url"),
            ),
        ],
    ),
    sms=f"Reminder: your interview{_FOR_JOB} is on {_WHEN_SHORT}.{_SMS_WHERE}"
    f" Details: {_INTERVIEW_URL}",
    push=True,
)

_INTERVIEW_RESCHEDULED = make_template(
    "interview_rescheduled",
    "Interview rescheduled",
    category="interview",
    priority="high",
    channels=["in_app", "email", "sms"],
    title=f"Interview rescheduled{_JOB_SUFFIX}",
    body=f"Your interview{_ROLE} has moved to {_WHEN_SHORT}.",
    action_url=_INTERVIEW_URL,
    email=Email(
        subject=f"Interview rescheduled: now {_WHEN_SHORT}",
        heading="Your interview has a new time",
        intro=[
            GREETING,
            f"Your interview{_ROLE} has been rescheduled. The updated details are below.",
            Para("Note from the team: {{ reason }}", when=defined("reason")),
        ],
        details=(
            *_interview_rows("New time"),
            Row(
                "Previous time",
                '{{ previous_interview_time|datetime("%A, %d %B %Y at %H:%M %Z") }}',
                when=defined("previous_interview_time"),
                html='<span style="text-decoration:line-through;color:#6b7280;">'
                '{{ previous_interview_time|datetime("%A, %d %B %Y at %H:%M %Z") }}</span>',
            ),
        ),
        action=Action("View interview details", _INTERVIEW_URL),
        outro=[
            "Your calendar invitation has been updated. If the new time does not work for"
            " you, please let us know as soon as possible.",
        ],
    ),
    sms=f"Your interview{_FOR_JOB} has moved to {_WHEN_SHORT}.{_SMS_WHERE}",
    push=True,
)

_INTERVIEW_CANCELLED = make_template(
    "interview_cancelled",
    "Interview cancelled",
    category="interview",
    priority="high",
    channels=["in_app", "email", "sms"],
    title=f"Interview cancelled{_JOB_SUFFIX}",
    body=f"Your interview{_ROLE} on {_WHEN_SHORT} has been cancelled.",
    action_url=_INTERVIEW_URL,
    email=Email(
        subject=f"Interview cancelled: {_WHEN_SHORT}",
        heading="Your interview has been cancelled",
        intro=[
            GREETING,
            f"We are sorry to let you know that your interview{_ROLE}, planned for {_WHEN},"
            " has been cancelled.",
            Para("Reason: {{ reason }}", when=defined("reason")),
        ],
        action=Action("View details", _INTERVIEW_URL),
        outro=[
            "The calendar event has been withdrawn, so there is nothing else you need to do."
            " If a new time is arranged, you will receive a new invitation.",
        ],
    ),
    sms=f"Your interview{_FOR_JOB} on {_WHEN_SHORT} has been cancelled."
    " We will be in touch if a new time is arranged.",
    push=True,
)

_APPLICATION_RECEIVED = make_template(
    "application_received",
    "Application received",
    category="application",
    priority="normal",
    channels=["in_app", "email"],
    title="Application received: {{ job_title }}",
    body="Thank you for applying for {{ job_title }} at {{ company_name }}."
    " We will be in touch about the next steps.",
    action_url="{{ application_url }}",
    email=Email(
        subject="We received your application for {{ job_title }}",
        heading="Thank you for applying",
        intro=[
            GREETING,
            "Thank you for your interest in the {{ job_title }} role at {{ company_name }}."
            " Your application has arrived safely and is now with our hiring team.",
            "We review every application carefully and will get back to you about the next"
            " steps. You can check the status of your application at any time.",
        ],
        action=Action("View your application", "{{ application_url }}"),
    ),
)

_STAGE_CHANGED = make_template(
    "stage_changed",
    "Candidate stage changed",
    category="application",
    priority="normal",
    channels=["in_app"],
    title="{{ candidate_name }} moved to {{ stage_name }}",
    body="{{ candidate_name }} ({{ job_title }}) moved"
    "{% if previous_stage is defined and previous_stage %} from {{ previous_stage }}{% endif %}"
    " to {{ stage_name }}"
    "{% if changed_by is defined and changed_by %} by {{ changed_by }}{% endif %}.",
    action_url="{{ application_url }}",
    email=Email(
        subject="{{ candidate_name }} is now in {{ stage_name }} ({{ job_title }})",
        heading="A candidate moved to a new stage",
        intro=[GREETING, "There is an update in your hiring pipeline for {{ job_title }}."],
        details=(
            Row("Candidate", "{{ candidate_name }}"),
            Row("Role", "{{ job_title }}"),
            Row("Previous stage", "{{ previous_stage }}", when=defined("previous_stage")),
            Row("New stage", "{{ stage_name }}"),
            Row("Moved by", "{{ changed_by }}", when=defined("changed_by")),
        ),
        action=Action("Open application", "{{ application_url }}"),
    ),
)

_OFFER_MADE = make_template(
    "offer_made",
    "Offer made",
    category="offer",
    priority="high",
    channels=["in_app", "email"],
    title="Congratulations! Your offer from {{ company_name }}",
    body="{{ company_name }} has made you an offer for the {{ job_title }} role."
    "{% if respond_by is defined and respond_by %}"
    ' Please respond by {{ respond_by|date("%d %B %Y") }}.{% endif %}',
    action_url="{{ offer_url }}",
    email=Email(
        subject="Your offer for {{ job_title }} at {{ company_name }}",
        heading="Congratulations, you have an offer!",
        intro=[
            GREETING,
            "We are delighted to offer you the {{ job_title }} position at {{ company_name }}.",
            "You can review the full offer, including the details of your compensation and"
            " start date, using the link below.",
        ],
        details=(
            Row("Role", "{{ job_title }}"),
            Row(
                "Please respond by",
                '{{ respond_by|datetime("%A, %d %B %Y, %H:%M %Z") }}',
                when=defined("respond_by"),
            ),
            Row("Your contact", "{{ recruiter_name }}", when=defined("recruiter_name")),
        ),
        action=Action("Review your offer", "{{ offer_url }}"),
        outro=[
            "If you have any questions about the offer, we are happy to talk them through."
            " We look forward to hearing from you.",
        ],
    ),
    sms="Good news from {{ company_name }}: you have an offer for {{ job_title }}."
    " Review it here: {{ offer_url }}",
    push=True,
)

_APPLICATION_REJECTED = make_template(
    "application_rejected",
    "Application not selected",
    category="application",
    priority="normal",
    channels=["in_app", "email"],
    title="Update on your application for {{ job_title }}",
    body="Thank you for your interest in {{ company_name }}. We have decided not to move"
    " forward with your application for {{ job_title }}.",
    action_url="{{ careers_url|default(inbox_url) }}",
    email=Email(
        subject="Your application for {{ job_title }} at {{ company_name }}",
        heading="An update on your application",
        intro=[
            GREETING,
            "Thank you for applying for the {{ job_title }} role at {{ company_name }}, and for"
            " the time and care you put into the process.",
            "After careful consideration, we have decided not to move forward with your"
            " application. This was not an easy decision, as we received many strong"
            " applications.",
            "New roles open regularly, and we would be glad to see your name again.",
        ],
        action=Action("See open roles", "{{ careers_url }}", when=defined("careers_url")),
        outro=["We wish you every success in your search."],
    ),
)

DEFAULT_TEMPLATES: Final[tuple[dict[str, Any], ...]] = (
    _INTERVIEW_SCHEDULED,
    _INTERVIEW_REMINDER,
    _INTERVIEW_RESCHEDULED,
    _INTERVIEW_CANCELLED,
    _APPLICATION_RECEIVED,
    _STAGE_CHANGED,
    _OFFER_MADE,
    _APPLICATION_REJECTED,
    *TEAM_TEMPLATES,
)
"""Every default template, in the order the specification lists them."""
