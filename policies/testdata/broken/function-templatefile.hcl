class "x" {
  match = [templatefile("/etc/governor/x.tpl", {})] # want: cannot call functions
}
