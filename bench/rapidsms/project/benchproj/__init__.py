# Load the Celery app when Django starts, as the Celery/Django docs prescribe,
# so that RapidSMS's @shared_task functions (rapidsms.router.db.tasks) bind to
# it and see CELERY_TASK_ALWAYS_EAGER from settings.
from .celery import app as celery_app

__all__ = ("celery_app",)
