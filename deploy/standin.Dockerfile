# The Loader + Annotations stand-in (../standin) as an image, for the compose
# file's `dev` profile and the rollout test. Not for production.
#
#     cargo build --release -p standin && deploy/stage.sh
#     docker build -f deploy/standin.Dockerfile -t detections-standin:dev .
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
COPY deploy/dist/standin /usr/local/bin/standin
RUN chmod 0755 /usr/local/bin/standin \
 && mkdir -p /models && chown 65534:65534 /models
LABEL org.opencontainers.image.title=detections
USER 65534:65534
ENV STANDIN_MODELS_DIR=/models STANDIN_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/standin"]
