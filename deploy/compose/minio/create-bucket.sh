#!/bin/sh
# Creates orders' attachment bucket in MinIO and a key for orders that can only read, write and
# delete objects of that bucket. Idempotent. Run by the `minio-buckets` one-off of compose.yaml
# (minio/mc image) before orders starts.
set -eu

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${BUCKET:?}" "${ORDERS_ACCESS_KEY:?}" "${ORDERS_SECRET_KEY:?}"
export MC_CONFIG_DIR=/tmp/mc

mc alias set aftersales "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "aftersales/$BUCKET"

cat > /tmp/orders-attachments.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": ["arn:aws:s3:::$BUCKET/*"]},
    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
     "Resource": ["arn:aws:s3:::$BUCKET"]}
  ]
}
POLICY
mc admin policy create aftersales orders-attachments /tmp/orders-attachments.json
mc admin user add aftersales "$ORDERS_ACCESS_KEY" "$ORDERS_SECRET_KEY"
# Attaching a policy the user already has fails on a re-run: check first.
if ! mc admin user info aftersales "$ORDERS_ACCESS_KEY" | grep -q orders-attachments; then
  mc admin policy attach aftersales orders-attachments --user "$ORDERS_ACCESS_KEY"
fi
echo "minio-buckets: $BUCKET ready for $ORDERS_ACCESS_KEY"
