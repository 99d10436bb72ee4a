#!/usr/bin/env cwl-runner
# Fails after `seconds` seconds (exit 3, with a line on stderr): long enough to subscribe to it first.
cwlVersion: v1.0
class: CommandLineTool
baseCommand: [sh, -c]
arguments:
  - valueFrom: sleep $(inputs.seconds); echo oops >&2; exit 3
inputs:
  seconds:
    type: int
outputs: []
