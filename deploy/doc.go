// Package deploy holds what operators deploy the suite with: the container
// image (Dockerfile), the Kubernetes manifests (k8s/, a kustomize base and
// the dev and prod overlays), the OpenTelemetry collector and Prometheus
// configuration of the root docker-compose.yml, and the Grafana dashboard.
//
// It has no Go code of its own: its tests render the kustomize overlays
// with the kustomize API and check every workload (probes, resources, a
// non-root and read-only securityContext, a Service, an autoscaler, a
// disruption budget and a network policy), and parse the compose file, the
// Dockerfile and the dashboard. See docs/operations.md.
package deploy
