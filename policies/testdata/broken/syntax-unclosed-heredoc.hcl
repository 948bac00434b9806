class "batch" {
  match = [<<EOT
batch.slice/**
# want: Unterminated template string