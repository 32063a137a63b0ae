"""Example variables for every default template: the docs, previews and golden tests use them.

Each entry lists the variables a caller sends for that template (required and optional
ones alike); ``ALWAYS_AVAILABLE_EXAMPLE`` shows the variables Tidings adds to every
render. Timestamps are RFC 3339 strings, as they arrive in a send's JSON ``data``.
"""

from __future__ import annotations

from typing import Any, Final

ALWAYS_AVAILABLE_EXAMPLE: Final[dict[str, Any]] = {
    "recipient": {
        "id": "user-1042",
        "name": "Jordan Rivera",
        "email": "jordan.rivera@example.com",
        "locale": "en",
        "timezone": "Europe/Berlin",
        "data": {},
    },
    "tenant": {"id": "acme"},
    "notification": {
        "id": "01933b6e-7a40-7cc2-9a6f-3c1b2f0d9e11",
        "category": "interview",
        "priority": "high",
    },
    "unsubscribe_url": "https://notify.example.com/v1/unsubscribe/example-token",
    "inbox_url": "https://notify.example.com/inbox",
}
"""The variables Tidings adds to every render, with example values."""

_INTERVIEW: Final[dict[str, Any]] = {
    "interview_time": "2025-10-14T13:00:00Z",
    "duration_minutes": 45,
    "location": "Acme Robotics, Torstraße 12, 10119 Berlin (3rd floor)",
    "job_title": "Senior Backend Engineer",
    "company_name": "Acme Robotics",
    "interviewer_names": "Priya Shah and Tom Becker",
    "interview_url": "https://ats.example.com/interviews/int-2231",
    "application_id": "app-5531",
    "candidate_id": "cand-881",
    "employer_id": "user-207",
}

TEMPLATE_VARIABLES_EXAMPLE: Final[dict[str, dict[str, Any]]] = {
    "interview_scheduled": dict(_INTERVIEW),
    "interview_reminder": {
        **_INTERVIEW,
        "location": "Video call",
        "meeting_url": "https://meet.example.com/acme-backend-interview",
    },
    "interview_rescheduled": {
        **_INTERVIEW,
        "interview_time": "2025-10-28T14:30:00Z",
        "previous_interview_time": "2025-10-14T13:00:00Z",
        "location": "https://meet.example.com/acme-backend-interview",
        "reason": "One of the interviewers is unexpectedly travelling that day.",
    },
    "interview_cancelled": {
        **_INTERVIEW,
        "reason": "The position has been put on hold.",
    },
    "application_received": {
        "job_title": "Product Designer",
        "company_name": "Acme Robotics",
        "application_url": "https://careers.example.com/applications/app-5531",
    },
    "stage_changed": {
        "candidate_name": "Amara Okafor",
        "job_title": "Product Designer",
        "previous_stage": "Phone screen",
        "stage_name": "Portfolio review",
        "changed_by": "Lena Fischer",
        "application_url": "https://ats.example.com/applications/app-5531",
    },
    "offer_made": {
        "job_title": "Senior Backend Engineer",
        "company_name": "Acme Robotics",
        "offer_url": "https://careers.example.com/offers/off-77",
        "respond_by": "2025-11-07T17:00:00+01:00",
        "recruiter_name": "Lena Fischer",
    },
    "application_rejected": {
        "job_title": "Data Analyst",
        "company_name": "Acme Robotics",
        "careers_url": "https://careers.example.com/jobs",
    },
    "resume_processed": {
        "file_name": "amara-okafor-cv.pdf",
        "candidate_name": "Amara Okafor",
        "candidate_url": "https://ats.example.com/candidates/cand-881",
        "job_title": "Product Designer",
        "skills": ["Figma", "User research", "Design systems"],
    },
    "bulk_upload_completed": {
        "total_files": 48,
        "successful": 46,
        "failed": 2,
        "upload_url": "https://ats.example.com/uploads/upl-19",
        "failed_files": [
            {"file_name": "scan_0042.tiff", "reason": "unsupported file type"},
            {"file_name": "cv-final-final.pdf", "reason": "the file is password-protected"},
        ],
    },
    "candidate_added": {
        "candidate_name": "Amara Okafor",
        "job_title": "Product Designer",
        "source": "LinkedIn",
        "added_by": "Lena Fischer",
        "candidate_url": "https://ats.example.com/candidates/cand-881",
    },
    "job_posted": {
        "job_title": "Site Reliability Engineer",
        "department": "Platform",
        "location": "Berlin or remote in the EU",
        "employment_type": "Full-time",
        "posted_by": "Lena Fischer",
        "job_url": "https://careers.example.com/jobs/sre-berlin",
    },
    "evaluation_completed": {
        "candidate_name": "Amara Okafor",
        "job_title": "Product Designer",
        "evaluator_name": "Priya Shah",
        "score": 4.5,
        "max_score": 5,
        "recommendation": "Strong hire",
        "evaluation_url": "https://ats.example.com/evaluations/ev-301",
    },
    "task_assigned": {
        "task_title": "Review Amara Okafor's portfolio",
        "task_description": "Score the case study against the design rubric.",
        "candidate_name": "Amara Okafor",
        "assigned_by": "Lena Fischer",
        "due_at": "2025-10-16T15:00:00Z",
        "task_url": "https://ats.example.com/tasks/task-912",
    },
    "task_overdue": {
        "task_title": "Review Amara Okafor's portfolio",
        "candidate_name": "Amara Okafor",
        "due_at": "2025-10-16T15:00:00Z",
        "task_url": "https://ats.example.com/tasks/task-912",
    },
    "new_message": {
        "sender_name": "Lena Fischer",
        "message_preview": "Hi Jordan, thanks for the great conversation today! Could you send"
        " over two references by Friday?",
        "job_title": "Senior Backend Engineer",
        "conversation_url": "https://ats.example.com/messages/conv-64",
    },
    "system_alert": {
        "alert_title": "E-mail delivery degraded",
        "alert_message": "The SMTP provider is rejecting 12% of messages; retries are in progress.",
        "severity": "critical",
        "occurred_at": "2025-10-14T02:17:05Z",
        "details_url": "https://notify.example.com/admin/deliveries?status=failed",
    },
    "digest": {
        "period": "daily",
        "items": [
            {
                "category": "interview",
                "title": "Interview scheduled: Senior Backend Engineer",
                "body": "Your interview is on Tue 14 Oct, 15:00 CEST (45 min).",
                "created_at": "2025-10-13T09:12:00Z",
                "action_url": "https://ats.example.com/interviews/int-2231",
            },
            {
                "category": "application",
                "title": "Amara Okafor moved to Portfolio review",
                "body": "Amara Okafor (Product Designer) moved to Portfolio review.",
                "created_at": "2025-10-13T11:40:00Z",
            },
            {
                "category": "application",
                "title": "Application received: Product Designer",
                "body": None,
                "created_at": "2025-10-13T16:05:00Z",
            },
            {
                "category": "task",
                "title": "New task: Review Amara Okafor's portfolio",
                "body": "Score the case study against the design rubric.",
                "created_at": "2025-10-13T17:30:00Z",
            },
        ],
    },
}
"""Example ``data`` for each default template key."""
