"""Self-test of the HybridNeuro module, run inside Slicer (ctest, or "Reload and Test").

    >>> import HybridNeuro
    >>> HybridNeuro.HybridNeuroTest().runTest()

It needs no download. Three tests: the demo overlay on a small oblique, anisotropic volume
(what it adds, the input untouched); the workflow's input checks (volumes without a day,
days out of order); and the whole workflow on the sample case — loaded, segmented, fitted
(tiny settings) and forecast, each in a background process as the panel runs them — with
the nodes it adds checked. The last one needs the Python packages (``HybridNeuroLogic.
ensureDependencies()``; it is skipped, saying so, without them) and takes a minute or two.
``Testing/test_module_ui.py`` runs all three headless on a ``slicer-core`` scene.
"""

from __future__ import annotations

import time

import numpy as np

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from .Logic import HybridNeuroLogic


class HybridNeuroTest(ScriptedLoadableModuleTest):
    """Exercises ``HybridNeuroLogic`` on synthetic data."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_createDemoOverlay()
        self.setUp()
        self.test_workflowInputsAreChecked()
        self.setUp()
        self.test_sampleCaseWorkflow()

    @staticmethod
    def _syntheticVolume() -> slicer.vtkMRMLScalarVolumeNode:
        """A 33×25×17 volume, 1.5×1×2 mm voxels, axes rotated 30° about S, off-centre origin."""
        angle = np.radians(30.0)
        directions = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]])
        ijkToRas = np.eye(4)
        ijkToRas[:3, :3] = directions @ np.diag([1.5, 1.0, 2.0])
        ijkToRas[:3, 3] = [12.0, -30.0, 7.5]
        voxels = np.random.default_rng(0).normal(100.0, 10.0, size=(17, 25, 33)).astype(np.float32)  # k, j, i
        return slicer.util.addVolumeFromArray(voxels, ijkToRas, name="HybridNeuroTest input")

    def test_createDemoOverlay(self) -> None:
        import SimpleITK as sitk

        from HybridNeuroLib import mrml
        from HybridNeuroLib.labels import BRATS_LABELS, density_to_labels

        self.delayDisplay("Creating a demo overlay on a synthetic volume")
        inputVolume = self._syntheticVolume()
        inputVoxels = slicer.util.arrayFromVolume(inputVolume).copy()
        inputMatrix = slicer.util.arrayFromVTKMatrix(_ijkToRas(inputVolume))
        volumesBefore = slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")
        segmentationsBefore = slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")

        density, lesion = HybridNeuroLogic().createDemoOverlay(inputVolume, lesionRadiusMm=9.0)

        # exactly one new volume and one new segmentation, named after the input
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"), volumesBefore + 1)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"), segmentationsBefore + 1)
        self.assertEqual(density.GetName(), "HybridNeuroTest input demo density")
        self.assertEqual(lesion.GetName(), "HybridNeuroTest input demo lesion")

        # the density lies on the input's grid, peaks at its centre, and is shown over it
        self.assertEqual(density.GetImageData().GetDimensions(), inputVolume.GetImageData().GetDimensions())
        np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(_ijkToRas(density)), inputMatrix, atol=1e-9)
        densityVoxels = slicer.util.arrayFromVolume(density)
        self.assertAlmostEqual(float(densityVoxels[8, 12, 16]), 1.0, places=5)
        self.assertAlmostEqual(float(densityVoxels.max()), 1.0, places=5)
        self.assertGreaterEqual(float(densityVoxels.min()), 0.0)
        composites = slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode")
        for composite in composites:
            self.assertEqual(composite.GetForegroundVolumeID(), density.GetID())
            self.assertEqual(composite.GetBackgroundVolumeID(), inputVolume.GetID())

        # the segmentation has the BraTS segments, matching the density's thresholds voxel for voxel
        segments = lesion.GetSegmentation()
        names = [segments.GetNthSegment(i).GetName() for i in range(segments.GetNumberOfSegments())]
        self.assertEqual(names, [label.name for label in BRATS_LABELS])
        labels = sitk.GetArrayFromImage(mrml.segmentation_to_labels(lesion, inputVolume))
        np.testing.assert_array_equal(labels, density_to_labels(densityVoxels))
        self.assertEqual(set(np.unique(labels).tolist()), {0, 1, 2, 3})  # every region is present

        # the input is unchanged
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(inputVolume), inputVoxels)
        np.testing.assert_array_equal(slicer.util.arrayFromVTKMatrix(_ijkToRas(inputVolume)), inputMatrix)
        self.assertEqual(inputVolume.GetName(), "HybridNeuroTest input")

        self.delayDisplay("Test passed")


    def test_workflowInputsAreChecked(self) -> None:
        from HybridNeuroLib.mrml.study_nodes import StudyInputError

        self.delayDisplay("Checking the workflow's inputs")
        logic = HybridNeuroLogic()
        with self.assertRaisesRegex(StudyInputError, "no volumes"):
            logic.segmentLesions()
        first, second = self._syntheticVolume(), self._syntheticVolume()
        first.SetName("FLAIR visit 1")
        second.SetName("FLAIR visit 2")
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        with self.assertRaisesRegex(StudyInputError, "'FLAIR visit 1' has no day"):
            logic.segmentLesions([first, second])
        first.SetAttribute("HybridNeuro.day", "60")
        second.SetAttribute("HybridNeuro.day", "0")
        with self.assertRaisesRegex(StudyInputError, "days out of order"):
            logic.segmentLesions([first, second])
        self.assertEqual([tp.day for tp in logic.timepoints()], [0.0, 60.0])  # the scene: ordered by day
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)
        self.delayDisplay("Test passed")


    def test_sampleCaseWorkflow(self) -> None:
        """Sample case → segment → fit → predict, each step in the background, as the panel runs them."""
        import math

        from HybridNeuroLib.labels import BRATS_LABELS
        from HybridNeuroLib.mrml.segmentations import segment_terminology

        logic = HybridNeuroLogic()
        missing = logic.missingDependencies()
        if missing:
            self.skipTest(f"needs the Python packages {missing}: run HybridNeuroLogic().ensureDependencies()")
        progress = []

        def run(step):  # a background StepJob, polled as the panel's timer does
            while (result := step.poll()) is None and not step.done:
                if hasattr(slicer, "app"):
                    slicer.app.processEvents()
                time.sleep(0.1)
            return result

        self.delayDisplay("Loading the sample case in the background")
        volumes = run(logic.loadSampleCase(blocking=False, onProgress=lambda s, f: progress.append((s, f))))
        self.assertEqual(sorted(volumes), [0.0, 60.0, 120.0])
        self.assertEqual(sorted(volumes[0.0]), ["t1c", "t1n", "t2f", "t2w"])
        self.assertTrue(all(node.GetAttribute("HybridNeuro.synthetic") == "1"
                            for contrasts in volumes.values() for node in contrasts.values()))

        self.delayDisplay("Segmenting the lesions (shipped model)")
        lesions = run(logic.segmentLesions(volumes, device="cpu", blocking=False,
                                           onProgress=lambda s, f: progress.append((s, f))))
        self.assertEqual([node.GetName() for node in lesions],
                         [f"synth-2024 lesion day {day}" for day in (0, 60, 120)])
        for node in lesions:
            segmentation = node.GetSegmentation()
            self.assertEqual([segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())],
                             [label.name for label in BRATS_LABELS])
            self.assertIn("SCT^79654002^Edema", segment_terminology(segmentation.GetSegment(
                segmentation.GetSegmentIdBySegmentName("edema"))))

        self.delayDisplay("Fitting the growth model (tiny settings)")
        fitted = run(logic.fitModel(lesions, voxelMm=4, starts=1, iterations=5, members=0, device="cpu",
                                    blocking=False))
        self.assertEqual(fitted.table.GetName(), "synth-2024 physics fit parameters")
        self.assertTrue(math.isfinite(fitted.parameters["D_w_mm2_per_day"]) and fitted.parameters["D_w_mm2_per_day"] > 0)

        self.delayDisplay("Forecasting days 180 and 240")
        forecast = run(logic.predict([180, 240], fitted=fitted, device="cpu", blocking=False))
        self.assertEqual(sorted(forecast.segmentations), [180.0, 240.0])
        self.assertEqual(forecast.segmentations[240.0].GetName(), "synth-2024 forecast day 240")
        whole = {row["day"]: row["whole_ml"] for row in forecast.volumes}
        self.assertGreater(whole[240.0], whole[120.0])  # the untreated forecast grows
        self.assertEqual(forecast.browser.GetMasterSequenceNode().GetNumberOfDataNodes(), 5)
        self.assertTrue(progress and progress[-1][1] == 1.0)
        self.delayDisplay("Test passed")


def _ijkToRas(volume: slicer.vtkMRMLVolumeNode):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return matrix
