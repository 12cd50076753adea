#!/usr/bin/env bash
# Print the environment the lastgood CLI needs to work on a deployed stack, as NAME=value
# lines (for $GITHUB_ENV, or `set -a; source <(scripts/stack_env.sh STACK)` in a shell):
# the backup bucket, the data key and the secrets prefix, read from the stack's outputs.
#
#   scripts/stack_env.sh STACK_NAME >> "$GITHUB_ENV"
set -euo pipefail
stack="${1:?usage: scripts/stack_env.sh STACK_NAME}"
output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
bucket="$(output BackupBucketName)"
key="$(output DataKeyArn)"
if [ -z "$bucket" ] || [ "$bucket" = "None" ]; then
  echo "error: stack $stack has no BackupBucketName output (is it a lastgood stack, in this region?)" >&2
  exit 2
fi
echo "BACKUP_BUCKET=$bucket"
echo "KMS_KEY_ID=$key"
echo "LASTGOOD_SECRETS_PREFIX=$stack/"
