#!/usr/bin/env cwl-runner
# Echoes `message` to stdout, which is captured as the output file `out` (greeting.txt).
cwlVersion: v1.0
class: CommandLineTool
baseCommand: echo
inputs:
  message:
    type: string
    inputBinding:
      position: 1
outputs:
  out:
    type: stdout
stdout: greeting.txt
