class "x" {
  match = [<<EOT
${file("/root/.ssh/id_rsa")} # want: cannot call functions
EOT
  ]
}
