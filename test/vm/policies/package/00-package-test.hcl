# Scenario "package": one knob the packaged daemon sets at once, next to
# the package's own /etc/governor/default.hcl. The name sorts before
# default.hcl, so this class is declared first and claims the unit before
# the default policy's "interactive" (system.slice/**).
class "pkgtest-web" {
  match = ["system.slice/vmt-pkg-web.service"]
}

protect "pkgtest-web-low" {
  target     = "pkgtest-web"
  memory_low = "200MiB"
}
