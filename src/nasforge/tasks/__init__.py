"""Tasks: what a network learns, from which data, judged by which metrics.

``get_task(name)`` builds a registered :class:`Task`; ``TASKS.names()`` lists them. Every
task module is imported here so that its ``@TASKS.register`` line runs.
"""

from nasforge.tasks import restoration  # noqa: F401  (registers denoise-*/sr-x*)
from nasforge.tasks.base import LOSS, TASKS, Loader, Metric, Task, TaskData, get_task
from nasforge.tasks.classification import ACCURACY, ClassificationTask, evaluate_classifier
from nasforge.tasks.detection import DetectionTask  # noqa: F401  (registers detection-digits)
from nasforge.tasks.translation import TranslationTask
from nasforge.tasks.video import VideoTask

__all__ = [
    "ACCURACY",
    "LOSS",
    "TASKS",
    "ClassificationTask",
    "Loader",
    "Metric",
    "Task",
    "TaskData",
    "TranslationTask",
    "VideoTask",
    "evaluate_classifier",
    "get_task",
]
