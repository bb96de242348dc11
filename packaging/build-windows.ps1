# Build the Windows one-folder bundle (PyInstaller) and its installer (Inno Setup 6).
# Run on Windows; PyInstaller does not cross-compile.
# Needs: py -3.11 -m venv .venv; .venv\Scripts\pip install -e ".[gui,packaging]"
#        Inno Setup 6 (ISCC.exe on PATH or in its default folder).
# Usage: powershell -File packaging\build-windows.ps1 [-OutDir build\windows]
# Not run here (no Windows machine); see docs/packaging.md.
param([string]$OutDir = "build\windows")
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$Out = [System.IO.Path]::GetFullPath($OutDir)
$Py = if ($env:PYTHON) { $env:PYTHON } else { ".venv\Scripts\python.exe" }

& $Py -m PyInstaller --noconfirm --log-level WARN --distpath "$Out\dist" --workpath "$Out\work" packaging\cellucid-desktop.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
$Bundle = "$Out\dist\cellucid-desktop"
$Version = (& $Py -c "import cellucid_desktop; print(cellucid_desktop.__version__)").Trim()

# The .iss is generated from cellucid_desktop/integration/windows.py; regenerate it so
# the installer and `cellucid-desktop integrate` write the same registry keys.
& $Py -m cellucid_desktop.integration.templates packaging
$Iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source
if (-not $Iscc) { $Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $Iscc "/DAppVersion=$Version" "/DBundleDir=$Bundle" "/O$Out" packaging\windows\cellucid-desktop.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Write-Host "built $Bundle and $Out\cellucid-desktop-$Version-setup.exe"
