"""Posts a photo to POST /detect in a loop, one at a time, for S seconds; prints p50/p99.

    python3 benches/drive.py http://127.0.0.1:8080 assets/photos/coffee.png 24
"""
import sys, time, urllib.request, uuid
base, photo, seconds = sys.argv[1], open(sys.argv[2], "rb").read(), float(sys.argv[3])
boundary = uuid.uuid4().hex
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"coffee.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()
lat = []
end = time.time() + seconds
while time.time() < end:
    t = time.perf_counter()
    req = urllib.request.Request(base + "/detect", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    urllib.request.urlopen(req).read()
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(f"n={len(lat)} p50={lat[len(lat)//2]:.1f} p99={lat[int(len(lat)*0.99)-1]:.1f} max={lat[-1]:.1f}")
