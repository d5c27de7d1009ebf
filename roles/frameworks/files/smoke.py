"""The frameworks role's smoke test, run by an environment's own python: import, version, a computation.

Argument: the framework (torch, jax, tensorflow). Prints one JSON object; exits 1 when the framework
is broken (cannot import, a wrong result, a GPU the build should see that fails its computation).
On a node with a GPU (--gpu) it also reports the device count, the CUDA version the build was made
for, and runs the computation on the GPU.
"""
import json
import sys
import time


def torch_check(gpu):
    import torch
    found = {"version": torch.__version__, "cuda_built": torch.version.cuda or ""}
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    found["cpu_result"] = float((x @ x.T).trace())
    if gpu:
        found["device_count"] = torch.cuda.device_count()
        if found["device_count"]:
            y = x.cuda()
            found["gpu_result"] = float((y @ y.T).trace().cpu())
            found["device"] = torch.cuda.get_device_name(0)
    return found


def jax_check(gpu):
    import jax
    import jax.numpy as jnp
    found = {"version": jax.__version__, "cuda_built": ""}
    x = jnp.arange(12, dtype=jnp.float32).reshape(3, 4)
    found["cpu_result"] = float(jnp.trace(x @ x.T))
    if gpu:
        devices = [device for device in jax.devices() if device.platform == "gpu"] if jax.default_backend() == "gpu" else []
        found["device_count"] = len(devices)
        if devices:
            y = jax.device_put(x, devices[0])
            found["gpu_result"] = float(jnp.trace(y @ y.T))
            found["device"] = devices[0].device_kind
            try:
                found["cuda_built"] = str(jax.devices()[0].client.platform_version)
            except AttributeError:
                pass
    return found


def tensorflow_check(gpu):
    import tensorflow as tf
    build = tf.sysconfig.get_build_info()
    found = {"version": tf.__version__, "cuda_built": build.get("cuda_version", "")}
    x = tf.reshape(tf.range(12, dtype=tf.float32), (3, 4))
    found["cpu_result"] = float(tf.linalg.trace(x @ tf.transpose(x)))
    if gpu:
        devices = tf.config.list_physical_devices("GPU")
        found["device_count"] = len(devices)
        if devices:
            with tf.device("/GPU:0"):
                found["gpu_result"] = float(tf.linalg.trace(x @ tf.transpose(x)))
    return found


def main():
    framework, gpu = sys.argv[1], "--gpu" in sys.argv[2:]
    start = time.monotonic()
    result = {"framework": framework, "ok": False, "python": sys.version.split()[0]}
    try:
        result.update({"torch": torch_check, "jax": jax_check, "tensorflow": tensorflow_check}[framework](gpu))
        # trace(x x^T) of 0..11 in a 3x4 matrix is the sum of squares: 506.
        expected = 506.0
        problems = [f"the CPU computation gave {result['cpu_result']}, not {expected}"] if result["cpu_result"] != expected else []
        if gpu and not result.get("device_count"):
            problems.append("the node has a GPU but the framework sees none (a CPU build, or the driver is not loaded)")
        if gpu and result.get("device_count") and result.get("gpu_result") != expected:
            problems.append(f"the GPU computation gave {result.get('gpu_result')}, not {expected}")
        result["ok"] = not problems
        result["problems"] = problems
    # Any failure at all is the answer: it goes into the result.
    except Exception as err:  # pylint: disable=broad-except
        result["problems"] = [f"{type(err).__name__}: {err}"]
    result["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
