#!/usr/bin/env cwl-runner
# Sleeps for `seconds` seconds, then completes. For cancel tests (the reference server's cancel is a no-op).
cwlVersion: v1.0
class: CommandLineTool
baseCommand: sleep
inputs:
  seconds:
    type: int
    inputBinding:
      position: 1
outputs: []
