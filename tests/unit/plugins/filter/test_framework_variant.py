"""dlnode.gpu.framework_variant: the matrix's decision from gpu_facts' fact, refusals as filter errors."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.filter.framework_variant import framework_variant

H100_FACT = {"present": True, "count": 1, "driver_loaded": True, "driver_version": "580.159.04",
             "cuda_driver_version": "13.0",
             "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "architecture": "Hopper", "compute_capability": "9.0"}]}


def test_h100_fact_gives_cu130():
    assert framework_variant({"framework": "torch", "version": "2.11.0"}, H100_FACT)["variant"] == "cu130"


def test_no_gpu_fact_gives_cpu():
    assert framework_variant({"framework": "jax", "version": "0.8.1"}, {"present": False, "gpus": []})["variant"] == "cpu"
    assert framework_variant({"framework": "jax", "version": "0.8.1"})["variant"] == "cpu"


def test_driver_about_to_be_installed_is_used_when_none_is_loaded():
    fact = dict(H100_FACT, driver_loaded=False, driver_version="", cuda_driver_version="")
    assert framework_variant({"framework": "torch", "version": "2.11"}, fact, "570.211.01")["variant"] == "cu128"


def test_refusal_names_the_minimum_driver():
    fact = dict(H100_FACT, driver_version="570.211.01", cuda_driver_version="12.8")
    with pytest.raises(AnsibleFilterError, match=r"cu130 is built for CUDA 13\.0 and needs NVIDIA driver 580\.65\.06 or newer"):
        framework_variant({"framework": "torch", "version": "2.11", "variant": "cu130"}, fact)


@pytest.mark.parametrize("request_, message", [
    ({"framework": "torch"}, "frameworks_environments: a framework needs framework and version, got {'framework': 'torch'}"),
    ("torch", "frameworks_environments: a framework needs framework and version, got 'torch'"),
])
def test_bad_request(request_, message):
    with pytest.raises(AnsibleFilterError) as refused:
        framework_variant(request_, H100_FACT)
    assert str(refused.value) == message
