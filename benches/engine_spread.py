"""The engine alone: session.run timed N times (2 intra-op threads, spinning off); prints
mean, p50, p99 and p99/mean, the spread no service on this machine can beat.

    .cache/venv/bin/python benches/engine_spread.py assets/models/azaion.onnx 150
"""
import sys, time, numpy as np, onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
o.add_session_config_entry("session.intra_op.allow_spinning", "0")
s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
x = np.random.rand(1, 3, 640, 640).astype(np.float32); name = s.get_inputs()[0].name
for _ in range(3): s.run(None, {name: x})
t = []
for _ in range(int(sys.argv[2])):
    a = time.perf_counter(); s.run(None, {name: x}); t.append((time.perf_counter() - a) * 1000)
t.sort(); m = sum(t) / len(t)
print(f"engine alone, {len(t)} runs: mean {m:.1f} ms, p50 {t[len(t)//2]:.1f}, p99 {t[int(len(t)*0.99)-1]:.1f} (p99/mean {t[int(len(t)*0.99)-1]/m:.2f}), max {t[-1]:.1f}")
