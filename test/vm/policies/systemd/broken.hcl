# Not a valid policy: a reload with it must keep the running one.
class "web" {
  match = ["system.slice/vmt-web.service"]
}

protect "web-low" {
  target     = "nowhere"
  memory_low = "lots"
}
