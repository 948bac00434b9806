// Package policies is governor's policy language: HCL files that declare
// classes of cgroups and the controllers acting on them, checked and
// compiled into a *governor.Policy.
//
// Load reads policy files or directories (refusing files that someone other
// than root could change), LoadSource compiles one in-memory source, and
// Default returns the built-in default policy embedded from default.hcl. All
// three report problems as hcl.Diagnostics whose Subject points at the
// offending block or attribute; Result.WriteDiagnostics prints them with the
// source line, as hcl's text writer does.
//
// The language (REFERENCE.md in this directory is the full reference):
//
//	governor    { tick report_every }                     at most one
//	class       "name" { match exclude protected }
//	protect     "name" { target memory_low memory_min }
//	reclaim     "name" { target signal goal interval step max_step min_size }
//	memory_high "name" { target step headroom max_below_current min max
//	                     cooldown max_per_minute when+ recover* relax+ }
//	suppress    "name" { target max_per_minute blame blame_min_share when+ recover*
//	                     knob "cpu.weight|cpu.max|io.weight" { step min cooldown }+ }
//	last_resort "name" { target grace kill when+ recover* }
//	rule        "name" { target knob direction step min max cooldown
//	                     max_per_minute blame blame_min_share when+ recover* }
//
// with condition blocks (when, recover, relax) of the form
//
//	{ signal above|below for [class | host] }
//
// Values carry units ("512MiB", "30s", "0.5%", "3/s", cores as numbers) and
// are parsed once, at load. Expressions are literals only: no variables and
// no functions, so a policy can never read files or the environment.
package policies
