"""The deployment files in cluster/ say what the README promises: token auth, nothing exposed."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from clusterkit import ROOT

CLUSTER = ROOT / "cluster"


def _ray_pods(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec.get("workerGroupSpecs", [])]
    return [g["template"]["spec"] for g in groups]


def test_the_cluster_launcher_config_is_valid_and_starts_every_node_through_the_scripts():
    import jsonschema
    import ray

    config = yaml.safe_load((CLUSTER / "aws-cluster.yaml").read_text())
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    assert "cluster/start-head.sh" in head and "--dashboard-host" not in head  # dashboard stays on 127.0.0.1
    assert "cluster/join-worker.sh" in workers
    assert "chmod 600 ~/.ray/auth_token" in config["setup_commands"]


def test_every_kuberay_cluster_requires_the_token_and_shares_the_results_volume():
    documents = list(yaml.safe_load_all((CLUSTER / "kuberay.yaml").read_text()))
    kinds = [d["kind"] for d in documents]
    assert kinds == ["PersistentVolumeClaim", "RayCluster", "RayJob"]
    specs = [documents[1]["spec"], documents[2]["spec"]["rayClusterSpec"]]
    for spec in specs:
        assert spec["authOptions"]["mode"] == "token"
        assert int(spec["rayVersion"].split(".")[1]) >= 52  # Ray's token auth
        assert "serviceType" not in spec["headGroupSpec"]  # ClusterIP: reach it by port-forward
        for pod in _ray_pods(spec):
            claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
            assert claims == {"tuning-service-results"}
            assert not any("RAY_AUTH_TOKEN" in str(c.get("env", "")) for c in pod["containers"])
    assert "--address auto" in documents[2]["spec"]["entrypoint"]


def test_every_pod_that_drives_sweeps_records_them_in_postgresql_with_the_password_from_a_secret():
    """Before: KubeRay's sweeps wrote SQLite onto the shared volume (a network filesystem), and the
    CronJob's Secret was made with the password on kubectl's command line."""
    documents = list(yaml.safe_load_all((CLUSTER / "kuberay.yaml").read_text()))
    cron = [d for d in yaml.safe_load_all((CLUSTER / "schedule" / "cronjob.yaml").read_text())]
    (cron_job,) = [d for d in cron if d["kind"] == "CronJob"]
    drivers = [
        documents[1]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0],
        documents[2]["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0],
        cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0],
    ]
    for container in drivers:
        assert {"secretRef": {"name": "tuning-service-db"}} in container["envFrom"], container["name"]
        assert "TUNING_SERVICE_DB" not in str(container.get("env", ""))  # never inline
    for name in ("kuberay.yaml", "schedule/cronjob.yaml"):
        text = (CLUSTER / name).read_text()
        assert "--from-literal" not in text and ":PASSWORD@" not in text
        assert "kubectl create secret generic tuning-service-db --from-env-file=db.env" in text
