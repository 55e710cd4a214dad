# HAProxy (Debian's) with deploy/cluster/haproxy.cfg, for the cluster compose file.
#
#     docker build -f deploy/cluster/haproxy.Dockerfile -t detections-haproxy:dev .
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
COPY deploy/cluster/haproxy.cfg /etc/haproxy/haproxy.cfg
LABEL org.opencontainers.image.title=detections
USER haproxy
EXPOSE 8080
ENTRYPOINT ["/usr/sbin/haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
