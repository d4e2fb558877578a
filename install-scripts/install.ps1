# Installs xopcbot from a release binary and sets the gateway up as a scheduled task that starts at logon.
#
#   powershell -ExecutionPolicy Bypass -File install.ps1 [-Sha256 HEX] BINARY [gateway install options]
#   powershell -ExecutionPolicy Bypass -File install.ps1 -Uninstall
#
# BINARY is a path or an http(s) URL of xopcbot-windows-x64.exe. Its checksum is verified against -Sha256,
# or against the SHA256SUMS file next to it.
param(
  [Parameter(Position = 0)][string]$Source,
  [string]$Sha256,
  [switch]$Uninstall,
  [Parameter(ValueFromRemainingArguments = $true)][string[]]$InstallArgs
)
$ErrorActionPreference = 'Stop'

$xopcbotHome = if ($env:XOPCBOT_HOME) { $env:XOPCBOT_HOME } else { Join-Path $env:USERPROFILE '.xopcbot' }
$installed = Join-Path $xopcbotHome 'bin\xopcbot.exe'

if ($Uninstall) {
  if (-not (Test-Path $installed)) { throw "xopcbot is not installed in $installed" }
  & $installed gateway uninstall
  if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
  Remove-Item $installed -Force
  Write-Output "xopcbot removed; your config and data in $xopcbotHome are kept"
  exit 0
}

if (-not $Source) { throw 'usage: install.ps1 [-Sha256 HEX] BINARY_PATH_OR_URL [gateway install options]' }
if ($env:PROCESSOR_ARCHITECTURE -ne 'AMD64') { throw "unsupported processor $($env:PROCESSOR_ARCHITECTURE); release binaries are for x64" }

$tmp = Join-Path ([IO.Path]::GetTempPath()) ("xopcbot-" + [guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
  $binary = Join-Path $tmp 'xopcbot.exe'
  $remote = $Source -match '^https?://'
  if ($remote) {
    Invoke-WebRequest -UseBasicParsing -Uri $Source -OutFile $binary
    $sumsSource = ($Source -replace '/[^/]*$', '') + '/SHA256SUMS'
  } else {
    if (-not (Test-Path $Source)) { throw "no such file: $Source" }
    Copy-Item $Source $binary
    $sumsSource = Join-Path (Split-Path -Parent (Resolve-Path $Source)) 'SHA256SUMS'
  }

  if (-not $Sha256) {
    $sums = Join-Path $tmp 'SHA256SUMS'
    if ($remote) { try { Invoke-WebRequest -UseBasicParsing -Uri $sumsSource -OutFile $sums } catch { } }
    elseif (Test-Path $sumsSource) { Copy-Item $sumsSource $sums }
    if (-not (Test-Path $sums)) { throw 'no checksum: pass -Sha256 HEX, or put SHA256SUMS next to the binary' }
    $name = Split-Path -Leaf $Source
    $line = Get-Content $sums | Where-Object { ($_ -split '\s+')[1] -in @($name, "*$name") } | Select-Object -First 1
    if (-not $line) { throw "SHA256SUMS has no line for $name" }
    $Sha256 = ($line -split '\s+')[0]
  }

  $actual = (Get-FileHash -Algorithm SHA256 $binary).Hash.ToLower()
  if ($actual -ne $Sha256.ToLower()) { throw "checksum mismatch: expected $Sha256, got $actual" }
  Write-Output 'Checksum verified'

  # The binary copies itself to $xopcbotHome\bin\xopcbot.exe and points the scheduled task at that copy.
  & $binary gateway install --runtime binary @InstallArgs
  if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
  Write-Output ''
  Write-Output 'Next steps:'
  Write-Output "  & '$installed' gateway service-status"
  Write-Output "  & '$installed' gateway token"
} finally {
  Remove-Item -Recurse -Force $tmp -ErrorAction SilentlyContinue
}
