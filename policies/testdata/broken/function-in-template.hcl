class "x" {
  match = ["${file("/etc/passwd")}"] # want: cannot call functions
}
