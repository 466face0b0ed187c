// Package deploy checks the files that deploy Tributary on real clusters (docker-compose.yml,
// the Dockerfile) against the code they run. No Docker engine runs in CI, so the tests read
// the files; they do not start them.
package deploy
