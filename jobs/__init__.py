"""Built-in jobs: one module per dataset, each exposing ``JOB``."""

from __future__ import annotations

from tuning_service.core.registry import Registry

JOBS = Registry("job")
JOBS.add_lazy("digits", "jobs.digits:JOB")
JOBS.add_lazy("digits_cnn", "jobs.digits:CNN_JOB")
JOBS.add_lazy("telco_churn", "jobs.telco_churn:JOB")
JOBS.add_lazy("pima_diabetes", "jobs.pima_diabetes:JOB")
JOBS.add_lazy("mnist", "jobs.mnist:JOB")
JOBS.add_lazy("fashion_mnist", "jobs.fashion_mnist:JOB")
JOBS.add_lazy("cifar10", "jobs.cifar10:JOB")
