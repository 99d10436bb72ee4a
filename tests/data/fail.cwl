#!/usr/bin/env cwl-runner
# Writes "oops" to stderr and exits 3, so the run ends in EXECUTOR_ERROR.
cwlVersion: v1.0
class: CommandLineTool
baseCommand: [sh, -c, "echo oops >&2; exit 3"]
inputs: []
outputs: []
