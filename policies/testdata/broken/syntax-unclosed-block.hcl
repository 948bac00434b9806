class "batch" { # want: Unclosed configuration block
  match = ["batch.slice/**"]
