// Package pkg is the root of the suite's shared foundations. Import rule:
// pkg/ never imports services/ or gateway/; services share only the
// generated API module (gen/) and pkg/.
package pkg
