"""Posts a photo to POST /detect from C client threads at once (each waits for its
answer), N requests per level after a warm-up of 2; prints images/s per level.

    python3 benches/load.py 8080 assets/photos/coffee.png 1,2,4,8 [N=48]

Used beside `perf record -a` for the profiles of docs/profile.md.
"""
import http.client
import sys
import threading
import time
import uuid

port, photo = int(sys.argv[1]), open(sys.argv[2], "rb").read()
levels = [int(c) for c in sys.argv[3].split(",")]
total = int(sys.argv[4]) if len(sys.argv) > 4 else 48
boundary = uuid.uuid4().hex
body = (
    f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
    f"filename=\"photo\"\r\nContent-Type: application/octet-stream\r\n\r\n"
).encode() + photo + f"\r\n--{boundary}--\r\n".encode()
headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post(n: int, statuses: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(n):
        conn.request("POST", "/detect", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)


for concurrency in levels:
    post(2, [])
    statuses: list = []
    per_client = -(-total // concurrency)
    clients = [threading.Thread(target=post, args=(per_client, statuses)) for _ in range(concurrency)]
    started = time.perf_counter()
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    elapsed = time.perf_counter() - started
    print(f"c={concurrency} {len(statuses) / elapsed:.2f} images/s, statuses {sorted(set(statuses))}", flush=True)
