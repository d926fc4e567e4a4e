# shellcheck shell=bash
# IMDSv2 for the HA pair's node-side scripts (ec2-move-vip, ec2-publish-state), sourced, not run: one session
# token, then metadata reads that carry it. The sourcing script defines log() first. Call imds_session in the
# script's own shell (not inside $(...)), so the token is kept for every read after it.
# AWS_EC2_METADATA_SERVICE_ENDPOINT points it elsewhere (the tests' local stub).
imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds=${imds%/}
imds_token=""
imds_session() {
  [ -n "$imds_token" ] && return 0
  imds_token=$(curl -fsS --max-time 2 --noproxy '*' -X PUT "$imds/latest/api/token" \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || { log "IMDSv2: no session token from $imds"; exit 1; }
}
imds_get() { # <path under /latest/meta-data/>
  curl -fsS --max-time 2 --noproxy '*' -H "X-aws-ec2-metadata-token: $imds_token" "$imds/latest/meta-data/$1"
}
