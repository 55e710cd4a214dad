# NATS server with JetStream (Debian's nats-server 2.9), for the cluster compose file.
#
#     docker build -f deploy/cluster/nats.Dockerfile -t detections-nats:dev .
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server curl \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
 && mkdir -p /data && chown 65534:65534 /data
COPY deploy/cluster/nats.conf /etc/nats/nats.conf
LABEL org.opencontainers.image.title=detections
USER 65534:65534
EXPOSE 4222 6222 8222
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8222/healthz || exit 1
ENTRYPOINT ["/usr/sbin/nats-server", "-c", "/etc/nats/nats.conf"]
