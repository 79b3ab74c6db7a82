"""The task-queue workbench: producer, consumer, control and dashboard built on RQ."""
