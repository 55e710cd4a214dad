#!/usr/bin/env bats
# Unit tests of the deploy scripts against a fake `docker` and `curl` (fake/).

setup() {
  DEPLOY=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
  export FAKE_DIR=$BATS_TEST_TMPDIR
  export PATH=$BATS_TEST_DIRNAME/fake:$PATH
  export COMPOSE="docker compose" DEPLOY_ENV_FILE=/nonexistent
  export DEPLOY_STATE_FILE=$FAKE_DIR/previous-tag
  export DETECTIONS_IMAGE=registry.test/detections
  export HEALTH_INTERVAL_SECS=0 HEALTH_TIMEOUT_SECS=1 STOP_GRACE_SECS=30
  unset DEPLOY_HEALTH_ARGS
  : >"$FAKE_DIR/calls"
}

running() { echo "$DETECTIONS_IMAGE:$1" >"$FAKE_DIR/running"; }
calls() { cat "$FAKE_DIR/calls"; }

@test "every script answers --help" {
  for s in deploy pull-images stop-services start-services health-check build-base-image stage; do
    run "$DEPLOY/$s.sh" --help
    [ "$status" -eq 0 ]
    [[ "$output" == usage:* ]]
  done
}

@test "stop-services writes the running tag before it stops, with SIGTERM and a 30 s grace" {
  running v1
  run "$DEPLOY/stop-services.sh"
  [ "$status" -eq 0 ]
  [ "$(cat "$DEPLOY_STATE_FILE")" = v1 ]
  grep -qx "docker stop --time 30 detections" "$FAKE_DIR/calls"
  grep -qx "  state-at-stop=v1 running=v1" "$FAKE_DIR/calls"
}

@test "stop-services with nothing running leaves the tag file alone" {
  echo v0 >"$DEPLOY_STATE_FILE"
  run "$DEPLOY/stop-services.sh"
  [ "$status" -eq 0 ]
  [ "$(cat "$DEPLOY_STATE_FILE")" = v0 ]
  ! grep -q "docker stop" "$FAKE_DIR/calls"
}

@test "stop-services --no-record does not touch the tag file; grace comes from the environment" {
  echo v0 >"$DEPLOY_STATE_FILE"
  running v2
  STOP_GRACE_SECS=7 run "$DEPLOY/stop-services.sh" --no-record
  [ "$status" -eq 0 ]
  [ "$(cat "$DEPLOY_STATE_FILE")" = v0 ]
  grep -qx "docker stop --time 7 detections" "$FAKE_DIR/calls"
}

@test "health-check: healthy at once" {
  running v1
  run "$DEPLOY/health-check.sh"
  [ "$status" -eq 0 ]
  [ "$(grep -c '/health$' "$FAKE_DIR/calls")" -eq 1 ]
}

@test "health-check: exits 1 after exactly 3 consecutive failures" {
  running v1
  echo v1 >"$FAKE_DIR/unhealthy"
  run "$DEPLOY/health-check.sh"
  [ "$status" -eq 1 ]
  [ "$(grep -c '/health$' "$FAKE_DIR/calls")" -eq 3 ]
  [[ "$output" == *"unhealthy after 3 consecutive failures"* ]]
}

@test "health-check --ready: None is not ready; --detect starts the engine first" {
  running v1
  echo None >"$FAKE_DIR/ai"
  run "$DEPLOY/health-check.sh" --ready
  [ "$status" -eq 1 ]
  [[ "$output" == *"aiAvailability is None"* ]]
  : >"$FAKE_DIR/calls"
  run "$DEPLOY/health-check.sh" --ready --detect "$BATS_TEST_FILENAME"
  [ "$status" -eq 0 ]
  [ "$(grep -c '/detect$' "$FAKE_DIR/calls")" -eq 1 ]
}

@test "deploy: pull, stop, start, health in that order; the old tag recorded" {
  running v1
  run "$DEPLOY/deploy.sh" v2
  [ "$status" -eq 0 ]
  [ "$(cat "$DEPLOY_STATE_FILE")" = v1 ]
  [ "$(cat "$FAKE_DIR/running")" = "$DETECTIONS_IMAGE:v2" ]
  order=$(grep -oE '^(docker (pull|stop|compose)|curl)' "$FAKE_DIR/calls" | tr '\n' ,)
  [ "$order" = "docker pull,docker stop,docker compose,curl," ]
}

@test "deploy: a failed pull stops nothing" {
  running v1
  echo v2 >"$FAKE_DIR/pull-fail"
  run "$DEPLOY/deploy.sh" v2
  [ "$status" -eq 1 ]
  ! grep -q "docker stop" "$FAKE_DIR/calls"
  [ "$(cat "$FAKE_DIR/running")" = "$DETECTIONS_IMAGE:v1" ]
}

@test "deploy: rolls back to the previous tag after the third failed check, exit 1" {
  running v1
  echo v2 >"$FAKE_DIR/unhealthy"
  run "$DEPLOY/deploy.sh" v2
  [ "$status" -eq 1 ]
  [ "$(cat "$FAKE_DIR/running")" = "$DETECTIONS_IMAGE:v1" ]
  [ "$(cat "$DEPLOY_STATE_FILE")" = v1 ]
  # Three checks of v2, then the rollback's stop, then v1 started and checked once.
  seq=$(grep -oE '^(docker (stop|compose)|curl)' "$FAKE_DIR/calls" | tr '\n' ,)
  [ "$seq" = "docker stop,docker compose,curl,curl,curl,docker stop,docker compose,curl," ]
  grep -qx "  state-at-stop=v1 running=v2" "$FAKE_DIR/calls"
  [[ "$output" == *"rolled back to v1"* ]]
}

@test "deploy: a failed start rolls back too" {
  running v1
  echo v2 >"$FAKE_DIR/up-fail"
  run "$DEPLOY/deploy.sh" v2
  [ "$status" -eq 1 ]
  [ "$(cat "$FAKE_DIR/running")" = "$DETECTIONS_IMAGE:v1" ]
}

@test "deploy: exit 2 when the rollback fails as well" {
  running v1
  printf 'v1\nv2\n' >"$FAKE_DIR/unhealthy"
  run "$DEPLOY/deploy.sh" v2
  [ "$status" -eq 2 ]
  [[ "$output" == *"rollback to v1 failed too"* ]]
}

@test "deploy: exit 2 when it fails with nothing to roll back to" {
  echo v1 >"$FAKE_DIR/unhealthy"
  run "$DEPLOY/deploy.sh" v1
  [ "$status" -eq 2 ]
  [ ! -e "$DEPLOY_STATE_FILE" ]
}

@test "deploy --rollback redeploys the previous tag; the current one becomes previous" {
  running v1
  run "$DEPLOY/deploy.sh" v2
  [ "$status" -eq 0 ]
  run "$DEPLOY/deploy.sh" --rollback
  [ "$status" -eq 0 ]
  [ "$(cat "$FAKE_DIR/running")" = "$DETECTIONS_IMAGE:v1" ]
  [ "$(cat "$DEPLOY_STATE_FILE")" = v2 ]
  grep -qx "docker pull $DETECTIONS_IMAGE:v1" "$FAKE_DIR/calls"
}

@test "deploy --rollback without a previous tag: exit 3, nothing touched" {
  running v1
  run "$DEPLOY/deploy.sh" --rollback
  [ "$status" -eq 3 ]
  [[ "$output" == *"nothing to roll back to"* ]]
  [ ! -s "$FAKE_DIR/calls" ]
}

@test "usage errors: no argument, two arguments, a bad tag" {
  run "$DEPLOY/deploy.sh"
  [ "$status" -eq 64 ]
  run "$DEPLOY/deploy.sh" v1 v2
  [ "$status" -eq 64 ]
  run "$DEPLOY/deploy.sh" --bogus
  [ "$status" -eq 64 ]
  run "$DEPLOY/deploy.sh" 'v1;rm'
  [ "$status" -eq 1 ]
  [ ! -s "$FAKE_DIR/calls" ]
}

@test "deploy/.env fills in what the environment leaves unset" {
  unset STOP_GRACE_SECS
  printf 'STOP_GRACE_SECS=12\nDETECTIONS_CONTAINER=from-env-file\n' >"$FAKE_DIR/env"
  echo "$DETECTIONS_IMAGE:v1" >"$FAKE_DIR/running"
  DEPLOY_ENV_FILE=$FAKE_DIR/env DETECTIONS_CONTAINER=from-environment run "$DEPLOY/stop-services.sh"
  [ "$status" -eq 0 ]
  grep -qx "docker stop --time 12 from-environment" "$FAKE_DIR/calls"
}
