# A deliberately broken release for the rollout test: the real image whose
# process exits at once, so /health never answers.
ARG GOOD_IMAGE
FROM ${GOOD_IMAGE}
ENTRYPOINT ["/bin/sh", "-c", "echo 'broken release: exiting' >&2; exit 1"]
