"""Default templates for the hiring team and for everyone: resumes, candidates, jobs,
evaluations, tasks, messages, system alerts and the e-mail digest.
"""

from __future__ import annotations

from typing import Any, Final

from tidings.template._compose import GREETING, Action, Email, Para, Row, defined, make_template

_DUE: Final = '{{ due_at|datetime("%a %d %b, %H:%M %Z") }}'
_SHORT_TIME: Final = '"%a %d %b, %H:%M"'

_RESUME_PROCESSED = make_template(
    "resume_processed",
    "Resume processed",
    category="resume",
    priority="low",
    channels=["in_app"],
    title="Resume processed: {{ candidate_name }}",
    body="{{ file_name }} has been processed and {{ candidate_name }}'s profile is ready to"
    " review.",
    action_url="{{ candidate_url }}",
    email=Email(
        subject="Resume processed: {{ candidate_name }}",
        heading="A resume is ready to review",
        intro=[
            GREETING,
            "We have finished processing {{ file_name }}. {{ candidate_name }}'s profile has"
            " been updated with the details we extracted.",
        ],
        details=(
            Row("Candidate", "{{ candidate_name }}"),
            Row("File", "{{ file_name }}"),
            Row("Applied for", "{{ job_title }}", when=defined("job_title")),
            Row("Skills found", '{{ skills|join(", ") }}', when=defined("skills")),
        ),
        action=Action("Review profile", "{{ candidate_url }}"),
    ),
)

_BULK_UPLOAD_COMPLETED = make_template(
    "bulk_upload_completed",
    "Bulk upload completed",
    category="resume",
    priority="normal",
    channels=["in_app", "email"],
    title="Bulk upload finished: {{ successful }} of {{ total_files }} processed",
    body="{{ successful }} of {{ total_files }} resumes were processed successfully"
    "{% if failed %}; {{ failed }} could not be processed{% endif %}.",
    action_url="{{ upload_url }}",
    email=Email(
        subject="Bulk upload complete: {{ successful }} of {{ total_files }} resumes processed",
        heading="Your bulk upload is complete",
        intro=[GREETING, "We have finished processing your bulk resume upload."],
        details=(
            Row("Files uploaded", "{{ total_files }}"),
            Row("Processed", "{{ successful }}"),
            Row("Not processed", "{{ failed }}"),
        ),
        action=Action("Review new candidates", "{{ upload_url }}"),
        outro=[
            Para(
                "These files could not be processed:\n"
                "{% for file in failed_files %}\n- {{ file.file_name }}: {{ file.reason }}\n"
                "{% endfor %}",
                when=defined("failed_files"),
                html='<p style="margin:0 0 8px 0;">These files could not be processed:</p>\n'
                '<ul style="margin:0 0 16px 0;padding-left:20px;">\n'
                "{% for file in failed_files %}\n"
                "<li>{{ file.file_name }}: {{ file.reason }}</li>\n"
                "{% endfor %}\n</ul>",
            ),
        ],
    ),
)

_CANDIDATE_ADDED = make_template(
    "candidate_added",
    "Candidate added",
    category="candidate",
    priority="normal",
    channels=["in_app"],
    title="New candidate: {{ candidate_name }}",
    body="{{ candidate_name }} was added to the {{ job_title }} pipeline"
    "{% if source is defined and source %} via {{ source }}{% endif %}.",
    action_url="{{ candidate_url }}",
    email=Email(
        subject="New candidate for {{ job_title }}: {{ candidate_name }}",
        heading="A new candidate is in your pipeline",
        intro=[GREETING, "{{ candidate_name }} has been added to the {{ job_title }} pipeline."],
        details=(
            Row("Candidate", "{{ candidate_name }}"),
            Row("Role", "{{ job_title }}"),
            Row("Source", "{{ source }}", when=defined("source")),
            Row("Added by", "{{ added_by }}", when=defined("added_by")),
        ),
        action=Action("View candidate", "{{ candidate_url }}"),
    ),
)

_JOB_POSTED = make_template(
    "job_posted",
    "Job posted",
    category="job",
    priority="normal",
    channels=["in_app", "email"],
    title="New job posted: {{ job_title }}",
    body="{{ job_title }}{% if location is defined and location %} ({{ location }}){% endif %}"
    " is now open for applications.",
    action_url="{{ job_url }}",
    email=Email(
        subject="New job posted: {{ job_title }}",
        heading="A new job is open",
        intro=[GREETING, "The {{ job_title }} role is now live and open for applications."],
        details=(
            Row("Role", "{{ job_title }}"),
            Row("Department", "{{ department }}", when=defined("department")),
            Row("Location", "{{ location }}", when=defined("location")),
            Row("Employment type", "{{ employment_type }}", when=defined("employment_type")),
            Row("Posted by", "{{ posted_by }}", when=defined("posted_by")),
        ),
        action=Action("View job", "{{ job_url }}"),
    ),
)

_SCORE: Final = '{{ score }}{{ (" / " ~ max_score) if max_score is defined and max_score else "" }}'

_EVALUATION_COMPLETED = make_template(
    "evaluation_completed",
    "Evaluation completed",
    category="evaluation",
    priority="normal",
    channels=["in_app", "email"],
    title="Evaluation complete: {{ candidate_name }}",
    body="The evaluation of {{ candidate_name }} for {{ job_title }} is complete"
    "{% if recommendation is defined and recommendation %}: {{ recommendation }}{% endif %}.",
    action_url="{{ evaluation_url }}",
    email=Email(
        subject="Evaluation complete: {{ candidate_name }} for {{ job_title }}",
        heading="An evaluation is ready",
        intro=[
            GREETING,
            "The evaluation of {{ candidate_name }} for the {{ job_title }} role is complete"
            " and ready for your review.",
        ],
        details=(
            Row("Candidate", "{{ candidate_name }}"),
            Row("Role", "{{ job_title }}"),
            Row("Evaluated by", "{{ evaluator_name }}", when=defined("evaluator_name")),
            Row("Score", _SCORE, when="score is defined and score is not none"),
            Row("Recommendation", "{{ recommendation }}", when=defined("recommendation")),
        ),
        action=Action("Read the evaluation", "{{ evaluation_url }}"),
    ),
)

_TASK_ASSIGNED = make_template(
    "task_assigned",
    "Task assigned",
    category="task",
    priority="normal",
    channels=["in_app", "email"],
    title="New task: {{ task_title }}",
    body="{% if assigned_by is defined and assigned_by %}{{ assigned_by }} assigned you a task"
    "{% else %}You have a new task{% endif %}: {{ task_title }}"
    f"{{% if due_at is defined and due_at %}} (due {_DUE}){{% endif %}}.",
    action_url="{{ task_url }}",
    email=Email(
        subject="New task: {{ task_title }}",
        heading="You have a new task",
        intro=[
            GREETING,
            "{% if assigned_by is defined and assigned_by %}{{ assigned_by }} has assigned"
            " you a task{% else %}A task has been assigned to you{% endif %}.",
        ],
        details=(
            Row("Task", "{{ task_title }}"),
            Row("Details", "{{ task_description }}", when=defined("task_description")),
            Row("Candidate", "{{ candidate_name }}", when=defined("candidate_name")),
            Row("Due", _DUE, when=defined("due_at")),
        ),
        action=Action("Open task", "{{ task_url }}"),
    ),
    push=True,
)

_TASK_OVERDUE = make_template(
    "task_overdue",
    "Task overdue",
    category="task",
    priority="high",
    channels=["in_app", "email", "push"],
    title="Overdue: {{ task_title }}",
    body=f"“{{{{ task_title }}}}” was due {_DUE}. Please complete it or update its due date.",
    action_url="{{ task_url }}",
    email=Email(
        subject="Overdue task: {{ task_title }}",
        heading="A task is overdue",
        intro=[
            GREETING,
            f"Your task “{{{{ task_title }}}}” was due {_DUE} and is not complete yet.",
        ],
        details=(
            Row("Task", "{{ task_title }}"),
            Row("Candidate", "{{ candidate_name }}", when=defined("candidate_name")),
            Row("Was due", _DUE),
        ),
        action=Action("Open task", "{{ task_url }}"),
        outro=["If it no longer applies, you can update or close it from the task page."],
    ),
    push=True,
)

_NEW_MESSAGE = make_template(
    "new_message",
    "New message",
    category="message",
    priority="normal",
    channels=["in_app", "push", "email"],
    title="New message from {{ sender_name }}",
    body="{{ message_preview|truncate(140) }}",
    action_url="{{ conversation_url }}",
    email=Email(
        subject="{{ sender_name }} sent you a message",
        heading="You have a new message",
        intro=[
            GREETING,
            "{{ sender_name }} sent you a message"
            "{% if job_title is defined and job_title %}"
            " about the {{ job_title }} role{% endif %}:",
            Para(
                '"{{ message_preview|truncate(500) }}"',
                html='<blockquote style="margin:0 0 16px 0;padding:12px 16px;'
                'border-left:4px solid #d1d5db;background-color:#f9fafb;color:#374151;">'
                "{{ message_preview|truncate(500) }}</blockquote>",
            ),
        ],
        action=Action("Reply", "{{ conversation_url }}"),
    ),
    push=True,
)

_SYSTEM_ALERT = make_template(
    "system_alert",
    "System alert",
    category="system",
    priority="urgent",
    channels=["in_app", "email"],
    title="System alert: {{ alert_title }}",
    body="{{ alert_message }}",
    action_url="{{ details_url|default(inbox_url) }}",
    email=Email(
        subject='[{{ severity|default("alert")|upper }}] {{ alert_title }}',
        heading="{{ alert_title }}",
        intro=["{{ alert_message }}"],
        details=(
            Row("Severity", "{{ severity|capitalize }}", when=defined("severity")),
            Row(
                "Detected at",
                '{{ occurred_at|datetime("%A, %d %B %Y at %H:%M:%S %Z") }}',
                when=defined("occurred_at"),
            ),
        ),
        action=Action("View details", "{{ details_url }}", when=defined("details_url")),
    ),
    sms="System alert: {{ alert_title }}. {{ alert_message|truncate(100) }}",
    push=True,
)

_PERIOD: Final = '{{ period|default("daily") }}'
_COUNT: Final = "{{ items|length }} update{{ '' if items|length == 1 else 's' }}"
_CATEGORY: Final = '{{ group.grouper|replace("_", " ")|capitalize }}'
_ITEM_TIME: Final = f"{{{{ item.created_at|datetime({_SHORT_TIME}) }}}}"
_DIGEST_HTML: Final = (
    '{% for group in items|groupby("category") %}\n'
    '<h2 style="margin:24px 0 8px 0;font-size:16px;color:#111827;">' + _CATEGORY + "</h2>\n"
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"'
    ' style="border-collapse:collapse;margin:0 0 8px 0;">\n'
    "{% for item in group.list %}\n"
    '<tr><td style="padding:10px 0;border-bottom:1px solid #e5e7eb;">\n'
    "{% if item.action_url is defined and item.action_url %}\n"
    '<a href="{{ item.action_url }}" style="color:#111827;font-weight:600;'
    'text-decoration:none;">{{ item.title }}</a>\n'
    "{% else %}\n"
    '<span style="font-weight:600;">{{ item.title }}</span>\n'
    "{% endif %}\n"
    "{% if item.body %}\n"
    '<div style="font-size:14px;color:#374151;">{{ item.body }}</div>\n'
    "{% endif %}\n"
    f'<div style="font-size:12px;color:#6b7280;">{_ITEM_TIME}</div>\n'
    "</td></tr>\n"
    "{% endfor %}\n"
    "</table>\n"
    "{% endfor %}"
)
_DIGEST_TEXT: Final = (
    '{% for group in items|groupby("category") %}\n'
    "{% if not loop.first %}\n\n{% endif %}\n"
    f"{_CATEGORY}\n"
    "{% for item in group.list %}\n"
    f"- {{{{ item.title }}}} ({_ITEM_TIME})\n"
    "{% if item.body %}\n"
    "  {{ item.body }}\n"
    "{% endif %}\n"
    "{% endfor %}\n"
    "{% endfor %}"
)

_DIGEST = make_template(
    "digest",
    "Notification digest",
    category="digest",
    priority="low",
    channels=["email"],
    title=f"Your {_PERIOD} summary: {_COUNT}",
    body="{{ items|map(attribute='title')|join('; ')|truncate(200) }}",
    action_url="{{ inbox_url }}",
    email=Email(
        subject=f"Your {_PERIOD} digest: {_COUNT}",
        heading=f"Your {_PERIOD} digest",
        intro=[
            GREETING,
            f"Here is a summary of what happened since your last digest: {_COUNT}.",
            Para(_DIGEST_TEXT, html=_DIGEST_HTML),
        ],
        action=Action("See everything in your inbox", "{{ inbox_url }}"),
    ),
)

TEAM_TEMPLATES: Final[tuple[dict[str, Any], ...]] = (
    _RESUME_PROCESSED,
    _BULK_UPLOAD_COMPLETED,
    _CANDIDATE_ADDED,
    _JOB_POSTED,
    _EVALUATION_COMPLETED,
    _TASK_ASSIGNED,
    _TASK_OVERDUE,
    _NEW_MESSAGE,
    _SYSTEM_ALERT,
    _DIGEST,
)
